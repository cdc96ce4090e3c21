"""``postgresql://`` traffic: the LiteLLM proxy's ``LiteLLM_SpendLogs`` table, read where it lives.

Against a real PostgreSQL 15 server started on 127.0.0.1 for the session (``pgserver``), with the table
created as the proxy creates it (``litellm_spendlogs.sql``, from the installed litellm's schema.prisma)
and filled with the 36 calls of native.jsonl as the proxy stores them (``get_logging_payload`` with
``store_prompts_in_spend_logs``: the request body in ``proxy_server_request``, the response object in
``response``, ``SpendLogsMetadata`` in ``metadata``, the prompt-type as the first request tag or in
``spend_logs_metadata``), plus a failed call and an embedding that must be skipped. Skipped when no server
can start here; failed instead with ``EQUIV_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from equiv.errors import InputError
from equiv.schema import TrafficRecord
from equiv.traffic import ReadStats, read_traffic
from equiv.traffic import postgres as pg
from equiv.traffic.sources import _open_source
from tests.traffic import pgserver

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
DDL = HERE / "litellm_spendlogs.sql"
NATIVE = ROOT / "tests" / "data" / "traffic_formats" / "native.jsonl"
EXPORT = ROOT / "tests" / "data" / "traffic_formats" / "litellm_spendlogs.json"
PRISMA = Path(__import__("litellm").__file__).parent / "proxy" / "schema.prisma"

READER = "equiv_reader"
# a password with every character a URL must encode, and a marker to look for in files and messages
READER_PASSWORD = f"Pw-{secrets.token_hex(6)}:@/?#%&= end"
NO_GRANT = "no_grant"
SKIP_REASONS = {
    "litellm-spendlogs: status failure": 1,
    "litellm-spendlogs: call_type aembedding is not a chat completion": 1,
}


def _native() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NATIVE.read_text().splitlines() if line.strip()]


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def _key(r: TrafficRecord) -> tuple[Any, ...]:
    usage = (r.usage.prompt_tokens, r.usage.completion_tokens) if r.usage else None
    return (r.timestamp, r.prompt_type, r.messages, r.response, usage, r.params)


# ------------------------------------------------------------------ rows as the proxy writes them


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _spend_row(i: int, rec: dict[str, Any]) -> dict[str, Any]:
    """One native call as ``get_logging_payload`` writes its LiteLLM_SpendLogs row."""
    tenant = rec["metadata"]["tenant"]
    start = _ts(rec["timestamp"])
    end = start + timedelta(milliseconds=900 + 37 * i)
    rid = f"chatcmpl-{uuid.uuid5(uuid.NAMESPACE_URL, rec['id']).hex[:29]}"
    usage = {
        "prompt_tokens": rec["usage"]["prompt_tokens"],
        "completion_tokens": rec["usage"]["completion_tokens"],
        "total_tokens": rec["usage"]["prompt_tokens"] + rec["usage"]["completion_tokens"],
    }
    cost = usage["prompt_tokens"] * 2.5e-6 + usage["completion_tokens"] * 1e-5
    key = _hash(f"sk-{tenant}")
    # every 5th call names its prompt-type in spend_logs_metadata instead of a tag
    in_meta = i % 5 == 4
    tags = ([] if in_meta else [rec["prompt_type"]]) + ["User-Agent: OpenAI", "User-Agent: OpenAI/Python 1.82.0"]
    client_meta: dict[str, Any] = {"tenant": tenant} | ({"prompt_type": rec["prompt_type"]} if in_meta else {})
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": rec["messages"],
        **rec["params"],
        "metadata": {"tags": [rec["prompt_type"]] if not in_meta else [], "spend_logs_metadata": client_meta},
    }
    return {
        "request_id": rid,
        "call_type": "acompletion",
        "api_key": key,
        "spend": cost,
        "total_tokens": usage["total_tokens"],
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "startTime": start,
        "endTime": end,
        "request_duration_ms": int((end - start).total_seconds() * 1000),
        "completionStartTime": end,
        "model": "gpt-4o",
        "model_id": _hash("gpt-4o-deployment"),
        "model_group": "gpt-4o",
        "custom_llm_provider": "openai",
        "api_base": "https://api.openai.com/v1",
        "user": f"svc-{tenant}",
        "metadata": {
            "user_api_key": key,
            "user_api_key_alias": f"{tenant}-prod",
            "user_api_key_team_id": f"team-{tenant}",
            "user_api_key_user_id": f"svc-{tenant}",
            "user_api_key_team_alias": tenant,
            "spend_logs_metadata": client_meta,
            "requester_ip_address": "",
            "user_agent": "OpenAI/Python 1.82.0",
            "applied_guardrails": [],
            "status": "success",
            "error_information": None,
            "usage_object": usage,
            "cost_breakdown": {"total_cost": cost},
        },
        "cache_hit": "False",
        "cache_key": "Cache OFF",
        "request_tags": tags,
        "team_id": f"team-{tenant}",
        "organization_id": "",
        "end_user": "",
        "requester_ip_address": "",
        "messages": {},  # chat calls: the prompt is in proxy_server_request
        "response": {
            "id": rid,
            "created": int(start.replace(tzinfo=UTC).timestamp()),
            "model": "gpt-4o-2024-08-06",
            "object": "chat.completion",
            "system_fingerprint": "fp_5aef96240b",
            "choices": [
                {
                    "finish_reason": "stop",
                    "index": 0,
                    "message": {
                        "content": rec["response"],
                        "role": "assistant",
                        "tool_calls": None,
                        "function_call": None,
                    },
                }
            ],
            "usage": usage,
        },
        "session_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, rec["id"])),
        "status": "success",
        "proxy_server_request": body,
        "litellm_call_id": str(uuid.uuid5(uuid.NAMESPACE_OID, rec["id"])),
    }


def _skipped_rows(template: dict[str, Any]) -> list[dict[str, Any]]:
    """A failed chat call and an embedding, after every native call (2025-06-02 12:00)."""
    start = datetime(2025, 6, 2, 12, 0, 0)
    failure = {
        **template,
        "request_id": "88a636a8-f443-333a-3028-b6e44079b6b1",
        "startTime": start,
        "endTime": start + timedelta(seconds=30),
        "completionStartTime": None,
        "spend": 0.0,
        "total_tokens": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "status": "failure",
        "metadata": {
            **template["metadata"],
            "status": "failure",
            "error_information": {"error_code": "429", "error_class": "RateLimitError", "error_message": "quota"},
        },
        "response": {},
    }
    embedding = {
        **template,
        "request_id": "f4a4b6f9-7e14-7fe3-fc8c-46aeb6ba559f",
        "call_type": "aembedding",
        "startTime": start + timedelta(minutes=1),
        "endTime": start + timedelta(minutes=1, seconds=1),
        "model": "text-embedding-3-small",
        "model_group": "text-embedding-3-small",
        "completion_tokens": 0,
        "proxy_server_request": {"model": "text-embedding-3-small", "input": ["reset link expired"]},
        "response": {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2]}]},
    }
    return [failure, embedding]


def _spend_rows() -> list[dict[str, Any]]:
    rows = [_spend_row(i, rec) for i, rec in enumerate(_native())]
    return rows + _skipped_rows(rows[0])


def _insert(conn: Any, rows: list[dict[str, Any]]) -> None:
    from psycopg import sql
    from psycopg.types.json import Jsonb

    for row in rows:
        cols = list(row)
        values = [Jsonb(v) if isinstance(v, dict | list) else v for v in row.values()]
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier("LiteLLM_SpendLogs"),
                sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.SQL(", ").join(sql.Placeholder() * len(cols)),
            ),
            values,
        )


def _export_rows() -> list[dict[str, Any]]:
    """The /spend/logs export fixture of the litellm format, its JSON text columns parsed (the table holds JSON)."""
    rows: list[dict[str, Any]] = json.loads(EXPORT.read_text())
    out = []
    for row in rows:
        row = dict(row)
        for k in ("metadata", "request_tags", "messages", "response", "proxy_server_request"):
            if isinstance(row.get(k), str) and row[k].strip()[:1] in ("{", "["):
                row[k] = json.loads(row[k])
        for k in ("startTime", "endTime", "completionStartTime", "created_at", "updated_at"):
            if isinstance(row.get(k), str):
                row[k] = datetime.fromisoformat(row[k]).astimezone(UTC).replace(tzinfo=None)
        out.append({k: v for k, v in row.items() if v is not None})  # null: the column's default
    return out


# ------------------------------------------------------------------ the server


@pytest.fixture(scope="session")
def server() -> Iterator[pgserver.PgServer]:
    reason = pgserver.unavailable()
    if reason is not None:
        if pgserver.required():
            pytest.fail(f"{pgserver.REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    srv = pgserver.start()
    try:
        yield srv
    finally:
        pgserver.stop(srv)


@pytest.fixture(scope="session")
def db(server: pgserver.PgServer) -> pgserver.PgServer:
    """Database ``litellm`` owned by the proxy's role, its table created and filled as the proxy does; a
    read-only role with a password that needs encoding; a role without the grant; an ``export`` schema
    holding the litellm format's /spend/logs export fixture."""
    proxy_pw = secrets.token_hex(8)
    with server.connect(autocommit=True) as admin:
        admin.execute(f"CREATE ROLE litellm LOGIN PASSWORD '{proxy_pw}'")
        admin.execute("CREATE DATABASE litellm OWNER litellm")
        pw = READER_PASSWORD.replace("'", "''")
        admin.execute(f"CREATE ROLE {READER} LOGIN PASSWORD '{pw}'")
        admin.execute(f"CREATE ROLE {NO_GRANT} LOGIN PASSWORD 'nogrant-pw'")
    with server.connect("litellm", "litellm", proxy_pw) as conn:
        conn.execute(DDL.read_text())
        _insert(conn, _spend_rows())
        conn.execute(f'GRANT SELECT ON "LiteLLM_SpendLogs" TO {READER}')
        conn.execute("CREATE SCHEMA export")
        conn.execute("SET search_path TO export")
        conn.execute(DDL.read_text())
        _insert(conn, _export_rows())
        conn.execute(f"GRANT USAGE ON SCHEMA export TO {READER}")
        conn.execute(f'GRANT SELECT ON export."LiteLLM_SpendLogs" TO {READER}')
        conn.commit()
    server.proxy_password = proxy_pw  # type: ignore[attr-defined]
    return server


def _url(db: pgserver.PgServer, **params: str) -> str:
    return db.url(READER, READER_PASSWORD, "litellm", **params)


def _secret_forms() -> list[str]:
    from urllib.parse import quote

    return [READER_PASSWORD, quote(READER_PASSWORD, safe=""), READER_PASSWORD.split(":")[0]]


def _assert_no_secret(text: str) -> None:
    for form in _secret_forms():
        assert form not in text, f"the password appears in: {text[:300]}"


# ------------------------------------------------------------------ the table as the proxy creates it


def _prisma_columns() -> list[str]:
    """The column names of ``model LiteLLM_SpendLogs`` in the installed litellm's schema.prisma."""
    model = re.search(r"^model LiteLLM_SpendLogs \{(.*?)^\}", PRISMA.read_text(), re.S | re.M)
    assert model is not None
    cols = []
    for line in model.group(1).splitlines():
        line = line.split("//")[0].strip()
        if not line or line.startswith("@@"):
            continue
        name = line.split()[0]
        mapped = re.search(r'@map\("([^"]+)"\)', line)
        cols.append(mapped.group(1) if mapped else name)
    return cols


def test_ddl_matches_the_installed_prisma_model(db: pgserver.PgServer) -> None:
    with db.connect("litellm") as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'LiteLLM_SpendLogs' ORDER BY ordinal_position"
        ).fetchall()
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert [r[0] for r in rows] == _prisma_columns()
    types = dict(rows)
    assert types["startTime"] == "timestamp without time zone" and types["metadata"] == "jsonb"
    assert types["spend"] == "double precision" and types["prompt_tokens"] == "integer"
    assert "LiteLLM_SpendLogs_startTime_request_id_idx" in indexes and "LiteLLM_SpendLogs_pkey" in indexes


# ------------------------------------------------------------------ the same records as native


def test_reads_the_same_records_as_the_native_file(db: pgserver.PgServer) -> None:
    stats = ReadStats()
    recs = list(read_traffic(_url(db), stats=stats))
    native = list(read_traffic(NATIVE))
    assert len(recs) == len(native) == 36
    assert [_key(r) for r in recs] == [_key(r) for r in sorted(native, key=lambda r: r.timestamp or 0)]
    assert dict(stats.skipped) == SKIP_REASONS
    assert all(r.source.startswith("LiteLLM_SpendLogs request_id=chatcmpl-") for r in recs)
    by_time = {r.timestamp: r for r in native}
    for r in recs:
        assert r.model == "gpt-4o" and r.metadata["tenant"] == by_time[r.timestamp].metadata["tenant"]
        assert r.metadata["team_id"] == f"team-{r.metadata['tenant']}"
        assert r.timestamp is not None and r.timestamp.tzinfo is not None


def test_the_spend_logs_export_loaded_into_the_table_reads_as_the_export_file(db: pgserver.PgServer) -> None:
    if not EXPORT.exists():
        pytest.skip("the litellm format's /spend/logs export fixture is not there")
    from_db = list(read_traffic(_url(db, schema="export")))
    from_file = list(read_traffic(EXPORT))
    assert sorted(map(_key, from_db), key=repr) == sorted(map(_key, from_file), key=repr)
    assert sorted(map(_key, from_db), key=repr) == sorted(map(_key, read_traffic(NATIVE)), key=repr)


def test_since_and_where_give_the_native_files_records(db: pgserver.PgServer) -> None:
    since = datetime(2025, 6, 1, 18, 0, tzinfo=UTC)
    where = ["team_id=team-acme", "prompt_type=summary"]
    recs = list(read_traffic(_url(db), since=since, where=where))
    want = [
        r
        for r in read_traffic(NATIVE)
        if r.timestamp and r.timestamp >= since and r.metadata["tenant"] == "acme" and r.prompt_type == "summary"
    ]
    assert len(want) == 3
    assert [_key(r) for r in recs] == [_key(r) for r in want]


# ------------------------------------------------------------------ pushed down to SQL, streamed


def test_since_is_pushed_down(db: pgserver.PgServer) -> None:
    since = _ts("2025-06-02T06:00:00Z").replace(tzinfo=UTC)
    src = pg.spendlogs_source(_url(db), since=since)
    rows = list(src())
    assert 'WHERE "startTime" >= %s' in src.sql and "ORDER BY" in src.sql
    assert "'2025" not in src.sql  # the value is a bound parameter, not SQL text
    assert src.rows_fetched == len(rows) == 6 + 2  # invoice-extraction-006..011, the failure, the embedding
    assert all(row["startTime"] >= since.replace(tzinfo=None) for _, row, _ in rows)
    assert [row["startTime"] for _, row, _ in rows] == sorted(row["startTime"] for _, row, _ in rows)


@pytest.mark.parametrize(
    ("where", "fetched", "read"),
    [
        (["model_group=gpt-4o"], 37, 36),  # the failure is a gpt-4o call too; the embedding is not
        (["team_id=team-acme", "status=success"], 18, 18),
        (["user=svc-globex"], 20, 18),  # the two skipped rows are globex's
        (["call_type=aembedding"], 1, 0),
        (["request_tags=summary"], 10, 10),  # 2 of the 12 summaries name their type in spend_logs_metadata
        (["prompt_type=summary"], 12, 12),  # tags or spend_logs_metadata: all 12
        (["prompt_type=ticket-triage"], 14, 12),  # + the failure and the embedding, tagged ticket-triage
    ],
)
def test_where_is_pushed_down(db: pgserver.PgServer, where: list[str], fetched: int, read: int) -> None:
    src = pg.spendlogs_source(_url(db), where=where)
    rows = list(src())
    assert src.rows_fetched == len(rows) == fetched
    assert src.sql.count("%s") >= len(where) and " WHERE " in src.sql
    for w in where:
        assert w.split("=", 1)[1] not in src.sql  # values are bound parameters
    stats = ReadStats()
    got = list(read_traffic(_url(db), where=where, stats=stats))
    assert len(got) == read


def test_filters_it_cannot_push_down_are_left_to_the_reader(db: pgserver.PgServer) -> None:
    src = pg.spendlogs_source(_url(db), where=["metadata.tenant=acme", "prompt_tokens=52", "prompt_type=default"])
    rows = list(src())
    assert " WHERE " not in src.sql and src.rows_fetched == len(rows) == 38
    recs = list(read_traffic(_url(db), where=["metadata.tenant=acme"]))
    assert len(recs) == 18


def test_a_where_column_is_selected_so_the_filter_sees_it(db: pgserver.PgServer) -> None:
    src = pg.spendlogs_source(_url(db), where=["api_base=https://api.openai.com/v1"])
    rows = list(src())
    assert '"api_base"' in src.sql and all(row["api_base"] == "https://api.openai.com/v1" for _, row, _ in rows)
    plain = pg.spendlogs_source(_url(db))
    next(iter(plain()))
    assert '"api_base"' not in plain.sql and '"api_key"' not in plain.sql  # only what a record needs
    assert len(list(read_traffic(_url(db), where=["api_base=https://api.openai.com/v1"]))) == 36


def test_open_source_passes_since_and_where_down(db: pgserver.PgServer) -> None:
    url = _url(db)
    source = _open_source(Path(url), url, 1 << 20, since=datetime(2025, 6, 2, tzinfo=UTC), where=["user=svc-acme"])
    assert isinstance(source, pg.SpendLogsSource)
    rows = list(source())
    assert len(rows) == 6 and '"user" = %s' in source.sql


def test_rows_are_streamed_through_a_server_side_cursor(db: pgserver.PgServer) -> None:
    src = pg.spendlogs_source(_url(db, application_name="equiv-stream-test"), batch_rows=5)
    it = src()
    next(it)
    with db.connect("litellm") as admin:
        (query, state) = admin.execute(
            "SELECT query, state FROM pg_stat_activity WHERE application_name = 'equiv-stream-test'"
        ).fetchone()
    assert query.startswith("FETCH FORWARD 5 FROM") and state == "idle in transaction"
    rest = list(it)
    assert len(rest) == 37 and src.batches == 8 and src.rows_fetched == 38


def test_nothing_is_written(db: pgserver.PgServer) -> None:
    src = pg.spendlogs_source(_url(db))
    with src._connect() as conn:
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)


# ------------------------------------------------------------------ the run key


def test_the_run_key_follows_the_rows(db: pgserver.PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _url(db)
    first = pg.spendlogs_digest(url)
    assert pg.spendlogs_digest(url) == first  # the same rows: the same key (a re-run resumes)
    monkeypatch.setenv("PGPASSWORD", READER_PASSWORD)
    assert pg.spendlogs_digest(db.url(READER, None, "litellm")) == first  # the password is not part of it
    monkeypatch.delenv("PGPASSWORD")
    since = datetime(2025, 6, 2, tzinfo=UTC)
    assert pg.spendlogs_digest(url, since=since) != first
    assert pg.spendlogs_digest(url, where=["team_id=team-acme"]) != first
    acme = pg.spendlogs_digest(url, where=["team_id=team-acme"])
    new = {**_spend_rows()[0], "request_id": "chatcmpl-new", "startTime": datetime(2025, 6, 3)}  # globex's
    with db.connect("litellm", "litellm", db.proxy_password) as conn:  # type: ignore[attr-defined]
        _insert(conn, [new])
        conn.commit()
    try:
        assert pg.spendlogs_digest(url) != first  # a new row: a new run
        assert pg.spendlogs_digest(url, where=["team_id=team-acme"]) == acme  # not one the filter keeps: resume
    finally:
        with db.connect("litellm", "litellm", db.proxy_password) as conn:  # type: ignore[attr-defined]
            conn.execute("DELETE FROM \"LiteLLM_SpendLogs\" WHERE request_id = 'chatcmpl-new'")
            conn.commit()
    assert pg.spendlogs_digest(url) == first


# ------------------------------------------------------------------ secrets and errors


def test_public_url_removes_every_password() -> None:
    assert pg.public_url("postgresql://u:s3cret@h:5432/db") == "postgresql://u@h:5432/db"
    assert pg.public_url("postgres://u:p%40ss%2Fw@h/db?sslmode=require") == "postgres://u@h/db?sslmode=require"
    assert pg.public_url("postgresql://u@h/db?password=s3cret&sslpassword=k3y") == "postgresql://u@h/db"
    prisma = "postgresql://u:pw@h:5432/litellm?schema=public&connection_limit=5"
    assert pg.public_url(prisma) == "postgresql://u@h:5432/litellm?schema=public&connection_limit=5"
    assert pg._target(prisma).conninfo == "postgresql://u@h:5432/litellm"  # Prisma's parameters: not libpq's
    assert "pw" not in repr(pg._target(prisma))


@pytest.mark.parametrize("secret", ["Qz@Kx", "Qz/Kx", "Qz?Kx", "Qz#Kx"])
def test_a_password_that_is_not_encoded_is_refused_unseen(secret: str) -> None:
    with pytest.raises(InputError) as e:
        pg.public_url(f"postgresql://u:{secret}@h/db")
    assert "percent-encode" in str(e.value) and "Qz" not in str(e.value) and "Kx" not in str(e.value)


def test_a_malformed_url_is_refused_before_connecting() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(InputError) as e:
        pg.spendlogs_source("postgresql://u:Qz7secret@127.0.0.1:1/db?bogus_option=1")
    assert "not a valid PostgreSQL URL" in str(e.value) and "bogus_option" in str(e.value)
    assert "Qz7secret" not in str(e.value)


def test_a_wrong_password_says_so_without_the_password(db: pgserver.PgServer) -> None:
    wrong = READER_PASSWORD + "x"
    with pytest.raises(InputError) as e:
        list(read_traffic(db.url(READER, wrong, "litellm")))
    msg = str(e.value)
    assert f"postgresql://{READER}@127.0.0.1:{db.port}/litellm" in msg
    assert "password authentication failed" in msg and "check the user and password" in msg
    _assert_no_secret(msg)


def test_pgpassword_is_used_and_never_shown(db: pgserver.PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", READER_PASSWORD)
    assert len(list(read_traffic(db.url(READER, None, "litellm")))) == 36
    monkeypatch.setenv("PGPASSWORD", READER_PASSWORD + "-wrong")
    with pytest.raises(InputError) as e:
        list(read_traffic(db.url(READER, None, "litellm")))
    _assert_no_secret(str(e.value))


def test_a_missing_table_names_the_database(db: pgserver.PgServer) -> None:
    with pytest.raises(InputError) as e:
        read_traffic(db.url(READER, READER_PASSWORD, "postgres"))
    msg = str(e.value)
    assert "has no table LiteLLM_SpendLogs" in msg and "/postgres" in msg and "DATABASE_URL" in msg
    _assert_no_secret(msg)
    with pytest.raises(InputError, match="has no table proxy.LiteLLM_SpendLogs"):
        read_traffic(_url(db, schema="proxy"))


def test_a_missing_database_and_a_closed_port_say_what_to_do(db: pgserver.PgServer) -> None:
    with pytest.raises(InputError) as e:
        read_traffic(db.url(READER, READER_PASSWORD, "nodb"))
    assert "check the database name" in str(e.value)
    _assert_no_secret(str(e.value))
    closed = _url(db).replace(f":{db.port}/", ":1/")
    with pytest.raises(InputError) as e:
        read_traffic(closed)
    assert "cannot connect" in str(e.value) and "check the host and port" in str(e.value)
    _assert_no_secret(str(e.value))


def test_no_permission_says_what_to_grant(db: pgserver.PgServer) -> None:
    with pytest.raises(InputError) as e:
        read_traffic(db.url(NO_GRANT, "nogrant-pw", "litellm"))
    msg = str(e.value)
    assert "may not read LiteLLM_SpendLogs" in msg and "GRANT SELECT" in msg and "nogrant-pw" not in msg


def test_no_matching_rows_is_an_error_naming_the_filters(db: pgserver.PgServer) -> None:
    with pytest.raises(InputError) as e:
        list(read_traffic(_url(db), where=["team_id=team-nobody"]))
    assert "no rows in LiteLLM_SpendLogs (where team_id=team-nobody)" in str(e.value)
    _assert_no_secret(str(e.value))


def test_without_psycopg_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(InputError, match=re.escape("pip install 'equiv[postgres]'")):
        read_traffic("postgresql://u:s3cret@127.0.0.1:1/db")


def test_file_paths_are_not_urls() -> None:
    assert pg.is_postgres_url("postgresql://h/db") and pg.is_postgres_url("POSTGRES://h/db")
    assert not pg.is_postgres_url("traffic.jsonl") and not pg.is_postgres_url("postgresql.jsonl")


# ------------------------------------------------------------------ through the CLI


def test_compare_through_the_cli_keeps_the_password_out_of_the_run(db: pgserver.PgServer, tmp_path: Path) -> None:
    config = tmp_path / "equiv.toml"
    config.write_text(
        "\n".join(
            [
                'baseline = "fake/skill-99"',
                'candidate = "fake/skill-99-v2-ctx18"',
                'judge = "fake/judge"',
                "per_type = 12",
                "seed = 0",
                "bootstrap = 500",
                "judge_check = false",
                "max_spend_usd = 5.0",
                '[models."fake/skill-99"]',
                "input_cost_per_mtok = 2.50",
                "output_cost_per_mtok = 10.00",
                '[models."fake/skill-99-v2-ctx18"]',
                "input_cost_per_mtok = 0.15",
                "output_cost_per_mtok = 0.60",
                '[models."fake/judge"]',
                "input_cost_per_mtok = 2.00",
                "output_cost_per_mtok = 8.00",
                "",
            ]
        )
    )
    out = tmp_path / "reports"
    env = {k: v for k, v in __import__("os").environ.items() if k != "PGPASSWORD"}
    done = subprocess.run(
        [sys.executable, "-m", "equiv", "compare", _url(db), "--config", str(config), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    _assert_no_secret(done.stdout + done.stderr)
    assert done.returncode in (0, 1), done.stdout + done.stderr  # a verdict (exit 1: a NO_GO), not an error
    (run,) = [d for d in out.iterdir() if d.is_dir()]
    files = [f for f in out.rglob("*") if f.is_file()]
    assert any(f.name == "verdict.json" for f in files)
    leaked = [
        str(f.relative_to(out))
        for f in files
        if any(form in f.read_bytes().decode("utf-8", "replace") for form in _secret_forms())
    ]
    assert not leaked, f"the password is written in {leaked}"
    info = json.loads((run / "run.json").read_text())
    assert info["traffic"] == f"postgresql://{READER}@127.0.0.1:{db.port}/litellm"
    # the same command again resumes the same run (the same rows: the same key)
    again = subprocess.run(
        [sys.executable, "-m", "equiv", "compare", _url(db), "--config", str(config), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    _assert_no_secret(again.stdout + again.stderr)
    assert [d for d in out.iterdir() if d.is_dir()] == [run], again.stdout + again.stderr
