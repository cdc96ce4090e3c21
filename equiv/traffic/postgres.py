"""The LiteLLM proxy's database as traffic: ``equiv compare postgresql://user@host:port/db``.  [I/O]

SPEC "Where traffic lives — contract", row ``litellm-spendlogs``: the proxy's own ``LiteLLM_SpendLogs``
table, read where it lives (``postgresql://`` or ``postgres://``; psycopg, the optional extra
``pip install 'equiv[postgres]'``). Each row is read by ``equiv.traffic.litellm._from_spendlog``, as a
``/spend/logs`` export is: this module only gets the rows out of the database.

Reading:

- **Streaming.** One server-side cursor (``DECLARE ... CURSOR``), fetched ``batch_rows`` rows at a time,
  in a read-only transaction: memory stays flat whatever the table's size, and nothing is ever written.
  Rows come in ``("startTime", request_id)`` order (the proxy's own index), so the same rows always come
  in the same order and a seeded sample is the same sample.
- **Only the columns a record needs** (``_COLUMNS``: what ``_from_spendlog`` and its detector read), plus
  the columns a ``--where`` key names, so that a filter sees the column as a ``/spend/logs`` export
  would show it. Columns an older proxy does not have yet are left out.
- **Filters pushed down to SQL, with bound parameters only** (identifiers through ``psycopg.sql``,
  values as ``%s`` parameters; no value is ever formatted into the SQL text):

  * ``since`` -> ``"startTime" >= %s`` (the record's timestamp is ``startTime``; an index range);
  * ``--where COLUMN=VALUE`` on a text column of the table (``model``, ``model_group``, ``user``,
    ``team_id``, ``status``, ``call_type``, ``end_user``, ``session_id`` ...) -> ``COLUMN = %s``, exactly
    what ``equiv.traffic.where`` decides for such a row (a column's value is text or null);
  * ``--where request_tags=TAG`` -> ``request_tags @> %s`` (JSON containment) or equality for a tag
    that is not in a list;
  * ``--where prompt_type=NAME`` (with the default ``prompt_type_field``; not for ``default``, which
    rows without any tag have) -> rows whose ``request_tags`` hold NAME, or whose
    ``metadata.spend_logs_metadata.prompt_type`` is NAME, or whose JSON columns are JSON text that only
    ``_from_spendlog`` can decode.

  Every pushed-down condition keeps at least the rows that the reader's own ``--where`` and ``since``
  checks keep; the reader still applies those checks to each record, so the result is the same as
  reading the whole table, only faster. Other keys (dotted paths, numbers) are left to the reader.

Secrets. A password in the URL (``user:password@``, ``?password=``, ``?sslpassword=``) or in
``PGPASSWORD`` never reaches a file, a log, run.json, a report or a message: every message names the
database by ``public_url`` (the URL without its password); libpq's own error text is scrubbed of the
password before it is shown. The password is passed to libpq apart from the URL (a connection
parameter), and ``repr`` of the objects holding it shows the public URL only. ``PGPASSWORD`` and
``~/.pgpass`` are left to libpq. A URL whose password is not percent-encoded
(an ``@``, ``/``, ``?`` or ``#`` in it) is refused without being echoed: it cannot be told apart from the
host. A Prisma ``DATABASE_URL`` (the proxy's own setting) works as it is: ``?schema=NAME`` names the
table's schema and Prisma's own parameters (``connection_limit``, ``pool_timeout``, ``pgbouncer`` ...)
are dropped before libpq sees them.

The run key (``spendlogs_digest``, what ``file_digest`` is for a file). A digest of the rows read is not
known before reading them, so the key is a digest of what defines the read and of the rows it would read,
from one cheap aggregate query with the same filters: the table, ``since``, the ``--where`` filters and
``prompt_type_field``, and of the matching rows their count, first and last ``startTime`` and an
order-free sum of (60 bits of) the md5 of each ``request_id``. The proxy writes a spend-log row once and
never updates it, and ``request_id`` is its primary key, so: the same rows -> the same key (a re-run
resumes); any row added or deleted (new traffic, the proxy's retention job) -> another key (a new run).
The host, user and password are not in the key: like ``file_digest``, it names the content, so the same
database reached through another host name or a replica resumes the same run. The aggregate and the read
are two queries: a row written between them is read but not counted, so that run's key can only match
the database as it was before that row; a later re-run then starts a new run instead of resuming (it
never resumes on other rows than it keyed).

Errors are ``InputError`` (exit 2) naming the database by its public URL and saying what to do: psycopg
missing, a malformed URL, cannot connect (host, port, database, user, password), no ``LiteLLM_SpendLogs``
table, no permission to read it, the connection lost while reading, no rows at all.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from equiv.errors import InputError
from equiv.traffic.fields import _Row
from equiv.traffic.where import Where, parse_where

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql as pgsql

SCHEMES = ("postgresql://", "postgres://")
TABLE = "LiteLLM_SpendLogs"
BATCH_ROWS = 500  # rows per FETCH: a spend-log row with its prompt, answer and request body is a few KB
CONNECT_TIMEOUT_S = 10
INSTALL_HINT = "pip install 'equiv[postgres]'"

# what _from_spendlog and its detector read (equiv.traffic.litellm), in the table's own column names
_COLUMNS = (
    "request_id",
    "call_type",
    "startTime",
    "spend",
    "model",
    "status",
    "metadata",
    "request_tags",
    "proxy_server_request",
    "messages",
    "response",
    "prompt_tokens",
    "completion_tokens",
    "user",
    "team_id",
    "organization_id",
    "end_user",
    "session_id",
    "model_group",
    "model_id",
    "custom_llm_provider",
    "cache_hit",
    "litellm_call_id",
)
_REQUIRED = ("request_id", "call_type", "startTime", "spend")  # what marks a row as a spend log
_TEXT_TYPES = frozenset({"text", "character varying", "character"})
_SECRET_PARAMS = ("password", "sslpassword")
# Prisma's own DATABASE_URL parameters: libpq refuses them ("invalid URI query parameter")
_PRISMA_PARAMS = frozenset(
    {"schema", "connection_limit", "pool_timeout", "pgbouncer", "statement_cache_size", "socket_timeout", "sslaccept"}
)
_DEFAULT_PROMPT_TYPE = "default"


def is_postgres_url(text: str | os.PathLike[str]) -> bool:
    """Whether ``text`` names a PostgreSQL database (``postgresql://`` or ``postgres://``) rather than a file."""
    return isinstance(text, str) and text[:13].lower().startswith(SCHEMES)


def public_url(url: str) -> str:
    """The URL without its password (``user:password@``, ``?password=``, ``?sslpassword=``): what files and
    messages may show. It connects only with a password from PGPASSWORD or ~/.pgpass."""
    return _target(url).public


def spendlogs_digest(
    url: str,
    *,
    since: datetime | None = None,
    where: Sequence[str] = (),
    prompt_type_field: str = "prompt_type",
) -> str:
    """The run key's traffic part for a database (see the module docstring): sha256 hex."""
    src = spendlogs_source(url, since=since, where=where, prompt_type_field=prompt_type_field)
    return src.digest()


def spendlogs_source(
    url: str,
    *,
    since: datetime | None = None,
    where: Sequence[str] = (),
    prompt_type_field: str = "prompt_type",
    batch_rows: int = BATCH_ROWS,
) -> SpendLogsSource:
    """Connect now (a wrong URL, password or table is an error before anything else) and return the rows'
    source: calling it streams ``(locator, row, False)`` as ``equiv.traffic.read`` consumes them."""
    _psycopg()  # a missing extra is said first
    target = _target(url)
    _check_url(target)
    filters = parse_where(where)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    src = SpendLogsSource(target, since, filters, prompt_type_field, max(1, batch_rows))
    src._inspect()
    return src


@dataclass(frozen=True, repr=False)
class _Target:
    """A parsed URL: ``conninfo`` for libpq (no secret in it), ``public`` for people, ``secrets`` apart."""

    conninfo: str
    public: str
    secrets: tuple[tuple[str, str], ...]
    schema: str | None

    def __repr__(self) -> str:  # never the secrets (a traceback, a log line, an assertion message)
        return f"_Target({self.public!r})"

    @property
    def table_name(self) -> str:
        return f"{self.schema}.{TABLE}" if self.schema else TABLE

    def scrub(self, text: str) -> str:
        """``text`` with every secret (and PGPASSWORD) replaced by ``***``: for libpq's own messages."""
        secrets = {form for _, v in self.secrets for form in (v, quote(v, safe=""), unquote(v))}
        if os.environ.get("PGPASSWORD"):
            secrets.add(os.environ["PGPASSWORD"])
        for s in sorted((s for s in secrets if s), key=len, reverse=True):
            text = text.replace(s, "***")
        return text


def _target(url: str) -> _Target:
    """Split a ``postgresql://`` URL into what libpq needs, what may be shown, and its secrets."""
    if not is_postgres_url(url):
        raise InputError("not a postgresql:// URL — write postgresql://USER@HOST:PORT/DATABASE")
    scheme = url[: url.index("://")].lower()
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if "@" in userinfo or "@" in parts.path or "@" in parts.query or parts.fragment:
        raise InputError(
            f"{scheme}:// URL: cannot tell its password from its host (the URL is not shown here) — "
            "percent-encode @ / ? # in the user and password (@ as %40, / as %2F, ? as %3F, # as %23), or leave "
            "the password out of the URL and set PGPASSWORD"
        )
    user, colon, password = userinfo.partition(":")
    secrets: dict[str, str] = {"password": unquote(password)} if colon and password else {}
    kept: list[tuple[str, str]] = []  # what libpq gets: no secret (passed apart), no Prisma parameter
    shown: list[tuple[str, str]] = []  # what people see: no secret
    schema = None
    for key, value in _query_items(parts.query):
        if key in _SECRET_PARAMS:
            if value:
                secrets[key] = value
            continue
        if any(word in key.lower() for word in ("pass", "secret", "token", "key")):
            shown.append((key, "***"))  # a misspelt secret parameter is still never shown
        else:
            shown.append((key, value))
        if key == "schema":
            schema = value or None
        elif key not in _PRISMA_PARAMS:
            kept.append((key, value))
    base = f"{scheme}://{user}{at}{hostport}{parts.path}"
    public = base + (f"?{urlencode(shown, quote_via=quote)}" if shown else "")
    conninfo = base + (f"?{urlencode(kept, quote_via=quote)}" if kept else "")
    return _Target(conninfo, public, tuple(secrets.items()), schema)


def _check_url(target: _Target) -> None:
    """libpq's own parser on the URL: a malformed one fails here, before any connection."""
    pg = _psycopg()
    try:
        pg.conninfo.conninfo_to_dict(target.conninfo)
    except pg.Error as e:
        raise InputError(
            f"{target.public}: not a valid PostgreSQL URL ({target.scrub(_first_line(e))}) "
            "— write postgresql://USER@HOST:PORT/DATABASE (a password percent-encoded, or in PGPASSWORD)"
        ) from None


def _query_items(query: str) -> list[tuple[str, str]]:
    """``a=1&b=%20`` -> pairs, percent-decoded as libpq decodes them (a ``+`` stays a ``+``)."""
    out = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            out.append((unquote(key), unquote(value)))
    return out


@dataclass(repr=False)
class SpendLogsSource:
    """The rows of ``LiteLLM_SpendLogs`` that the filters keep, streamed (see the module docstring).

    ``sql`` is the last query sent (its text, parameters apart), ``rows_fetched`` and ``batches`` what the
    last read fetched: the tests check the pushdown with them.
    """

    target: _Target
    since: datetime | None
    where: list[Where]
    prompt_type_field: str
    batch_rows: int
    columns: dict[str, str] = field(default_factory=dict)  # the table's columns -> their type
    sql: str = ""
    rows_fetched: int = 0
    batches: int = 0

    @property
    def public_url(self) -> str:
        return self.target.public

    def __repr__(self) -> str:
        return f"SpendLogsSource({self.public_url!r})"

    def __call__(self, *, raw: bool = False) -> Iterator[_Row]:  # rows of a table: never raw lines
        query, params = self._select()
        self.rows_fetched = self.batches = 0
        with self._connect() as conn:
            self.sql = query.as_string(conn)
            with self._errors("reading"), conn.cursor(name="equiv_spendlogs", row_factory=_dict_row()) as cur:
                cur.execute(query, params)
                while rows := cur.fetchmany(self.batch_rows):
                    self.batches += 1
                    self.rows_fetched += len(rows)
                    for row in rows:
                        yield f"{TABLE} request_id={row.get('request_id')}", row, False
        if self.rows_fetched == 0:
            raise InputError(
                f"{self.public_url}: no rows in {self.target.table_name}{self._filters_text()} — check that the "
                "URL names the proxy's database and that the proxy logs spend (disable_spend_logs off), or "
                "widen --since / --where"
            )

    def digest(self) -> str:
        """sha256 hex of what defines the read and of the rows it reads (module docstring: the run key)."""
        sql = _psycopg_sql()
        conds, params = self._conditions()
        query = sql.SQL(
            "SELECT count(*), min({st}), max({st}), "
            "coalesce(sum(('x' || substr(md5({rid}), 1, 15))::bit(60)::bigint), 0)::text FROM {table}{where}"
        ).format(st=sql.Identifier("startTime"), rid=sql.Identifier("request_id"), table=self._table(), where=conds)
        with self._connect() as conn, self._errors("counting"):
            self.sql = query.as_string(conn)
            row = conn.execute(query, params).fetchone()
        assert row is not None
        count, first, last, ids = row
        blob = {
            "source": "litellm-spendlogs",
            "table": self.target.table_name,
            "since": self.since.isoformat() if self.since is not None else None,
            "where": sorted(f"{w.key}={w.value}" for w in self.where),
            "prompt_type_field": self.prompt_type_field,
            "rows": count,
            "first": first.isoformat() if first is not None else None,
            "last": last.isoformat() if last is not None else None,
            "request_ids": ids,
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()

    # -- the SQL --------------------------------------------------------------------------------------

    def _select(self) -> tuple[pgsql.Composed, list[Any]]:
        sql = _psycopg_sql()
        wanted = [c for c in _COLUMNS if c in self.columns]
        wanted += [c for c in dict.fromkeys(w.path[0] for w in self.where) if c in self.columns and c not in wanted]
        conds, params = self._conditions()
        query = sql.SQL("SELECT {cols} FROM {table}{where} ORDER BY {st}, {rid}").format(
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in wanted),
            table=self._table(),
            where=conds,
            st=sql.Identifier("startTime"),
            rid=sql.Identifier("request_id"),
        )
        return query, params

    def _table(self) -> pgsql.Identifier:
        sql = _psycopg_sql()
        return sql.Identifier(self.target.schema, TABLE) if self.target.schema else sql.Identifier(TABLE)

    def _conditions(self) -> tuple[pgsql.Composable, list[Any]]:
        """`` WHERE ...`` for ``since`` and the filters that can be pushed down (empty when none can)."""
        sql = _psycopg_sql()
        conds: list[pgsql.Composable] = []
        params: list[Any] = []
        if self.since is not None:
            conds.append(sql.SQL("{} >= %s").format(sql.Identifier("startTime")))
            # the column is a timestamp without time zone holding UTC (the proxy writes UTC; the session is UTC)
            params.append(self.since.astimezone(UTC).replace(tzinfo=None))
        for w in self.where:
            pushed = self._pushdown(w)
            if pushed is not None:
                conds.append(pushed[0])
                params.extend(pushed[1])
        if not conds:
            return sql.SQL(""), params
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds), params

    def _pushdown(self, w: Where) -> tuple[pgsql.Composable, list[Any]] | None:
        """One filter as SQL that keeps at least the rows the reader's check keeps, or None (left to it)."""
        sql = _psycopg_sql()
        jsonb = _psycopg().types.json.Jsonb
        if len(w.path) != 1:
            return None
        key = w.key
        kind = self.columns.get(key)
        if key == "request_tags" and kind == "jsonb":
            values = _json_values(w.value)
            tags = sql.Identifier("request_tags")
            return (
                sql.SQL("({t} @> ANY(%s::jsonb[]) OR {t} = ANY(%s::jsonb[]))").format(t=tags),
                [[jsonb([v]) for v in values], [jsonb(v) for v in values]],
            )
        if key in self.columns:
            if kind in _TEXT_TYPES:
                return sql.SQL("{} = %s").format(sql.Identifier(key)), [w.value]
            return None
        if (
            key == "prompt_type"
            and self.prompt_type_field == "prompt_type"
            and w.value != _DEFAULT_PROMPT_TYPE
            and self.columns.get("request_tags") == "jsonb"
            and self.columns.get("metadata") == "jsonb"
        ):
            # _from_spendlog: the first request tag (a text, or a number as text), else
            # metadata.spend_logs_metadata.prompt_type; JSON text in a column is decoded there, so kept here
            values = _json_values(w.value)
            return (
                sql.SQL(
                    "({t} @> ANY(%s::jsonb[]) OR jsonb_typeof({t}) = 'string'"
                    " OR {m} #> '{{spend_logs_metadata,prompt_type}}' = ANY(%s::jsonb[])"
                    " OR jsonb_typeof({m}) = 'string')"
                ).format(t=sql.Identifier("request_tags"), m=sql.Identifier("metadata")),
                [[jsonb([v]) for v in values], [jsonb(v) for v in values]],
            )
        return None

    def _filters_text(self) -> str:
        parts = []
        if self.since is not None:
            parts.append(f"since {self.since.isoformat(timespec='seconds')}")
        parts += [f"where {w.key}={w.value}" for w in self.where]
        return f" ({', '.join(parts)})" if parts else ""

    # -- the connection -------------------------------------------------------------------------------

    def _inspect(self) -> None:
        """Check the table now: it exists, this user may read it, it has a spend log's columns."""
        name = self.target.table_name
        quoted = ".".join(_quote_ident(p) for p in ([self.target.schema] if self.target.schema else []) + [TABLE])
        with self._connect() as conn, self._errors("inspecting"):
            found = conn.execute(
                "SELECT c.oid::bigint, has_table_privilege(c.oid, 'SELECT') FROM pg_class c "
                "WHERE c.oid = to_regclass(%s)",
                [quoted],
            ).fetchone()
            if found is None:
                db = conn.info.dbname
                path = conn.execute("SELECT current_schemas(false)::text").fetchone()
                schemas = self.target.schema or (path[0] if path else "the search_path")
                raise InputError(
                    f"{self.public_url}: database {db!r} has no table {name} (looked in {schemas}) — give the "
                    "LiteLLM proxy's database (its DATABASE_URL), and ?schema=NAME if its tables are in another "
                    "schema"
                )
            oid, may_read = found
            if not may_read:
                raise InputError(
                    f"{self.public_url}: user {conn.info.user!r} may not read {name} (permission denied) — "
                    f'GRANT SELECT ON "{TABLE}" TO "{conn.info.user}", or connect as a user who may'
                )
            rows = conn.execute(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                "WHERE attrelid = %s::oid AND attnum > 0 AND NOT attisdropped",
                [oid],
            ).fetchall()
        self.columns = {n: t for n, t in rows}
        missing = [c for c in _REQUIRED if c not in self.columns]
        if missing:
            raise InputError(
                f"{self.public_url}: {name} has no column {', '.join(missing)}: not the LiteLLM proxy's spend-log "
                "table — give the proxy's database"
            )

    def _connect(self) -> psycopg.Connection[Any]:
        pg = _psycopg()
        t = self.target
        opts: dict[str, Any] = dict(t.secrets)
        info = pg.conninfo.conninfo_to_dict(t.conninfo)
        opts.setdefault("application_name", info.get("application_name") or "equiv")
        if "connect_timeout" not in info:
            opts["connect_timeout"] = CONNECT_TIMEOUT_S
        try:
            conn = pg.connect(t.conninfo, **opts)
        except pg.Error as e:
            raise InputError(_connect_message(t, e)) from None
        try:
            conn.read_only = True
            conn.execute("SET TIME ZONE 'UTC'")
        except pg.Error as e:
            conn.close()
            raise InputError(f"{t.public}: the connection failed ({t.scrub(_first_line(e))}) — try again") from None
        return conn

    def _errors(self, doing: str) -> AbstractContextManager[None]:
        return _query_errors(self.target, doing)


@contextmanager
def _query_errors(t: _Target, doing: str) -> Iterator[None]:
    """A psycopg error while querying -> an InputError naming the database (secrets scrubbed) and a fix."""
    pg = _psycopg()
    try:
        yield
    except pg.Error as e:
        if isinstance(e, pg.errors.InsufficientPrivilege):
            fix = f'GRANT SELECT ON "{TABLE}" to this user, or connect as a user who may read it'
        elif isinstance(e, pg.errors.UndefinedTable):
            fix = "give the LiteLLM proxy's database (its DATABASE_URL)"
        elif isinstance(e, pg.errors.QueryCanceled):
            fix = "narrow the read with --since or --where, or raise the server's statement_timeout for this user"
        elif isinstance(e, pg.OperationalError):
            fix = "the connection was lost: run the command again (a run resumes where it stopped)"
        else:
            fix = "check the database and its table"
        raise InputError(f"{t.public}: {doing} {t.table_name} failed ({t.scrub(_first_line(e))}) — {fix}") from None


def _connect_message(t: _Target, e: BaseException) -> str:
    text = str(e)
    detail = t.scrub(_first_line(e))
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low or "authentication failed" in low:
        fix = "check the user and password (the URL's, percent-encoded; PGPASSWORD; or ~/.pgpass)"
    elif "does not exist" in low and "database" in low:
        fix = "check the database name: the proxy's DATABASE_URL names it"
    elif "does not exist" in low and "role" in low:
        fix = "check the user name"
    elif "invalid" in low and ("uri" in low or "option" in low or "connection" in low):
        fix = "check the URL: postgresql://USER@HOST:PORT/DATABASE"
    else:
        fix = "check the host and port, that the server is running and that it accepts connections from here"
    return f"{t.public}: cannot connect to PostgreSQL ({detail}) — {fix}"


def _first_line(e: BaseException) -> str:
    """The message's most telling line (libpq puts the reason after 'connection to server ... failed:')."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = " ".join(lines[:2]) if lines else type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _json_values(value: str) -> list[Any]:
    """The JSON values whose text (as ``equiv.traffic.where`` writes it) may be ``value``: the text itself,
    and the number or boolean it spells."""
    out: list[Any] = [value]
    try:
        parsed = json.loads(value)
    except ValueError:
        return out
    if isinstance(parsed, bool) or (isinstance(parsed, int | float) and math.isfinite(parsed)):
        out.append(parsed)
    return out


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg.conninfo
        import psycopg.types.json
    except ImportError:
        raise InputError(
            f"reading a postgresql:// database needs psycopg, which is not installed — {INSTALL_HINT}"
        ) from None
    return psycopg


def _psycopg_sql() -> Any:
    return _psycopg().sql


def _dict_row() -> Any:
    from psycopg.rows import dict_row

    return dict_row


__all__ = [
    "BATCH_ROWS",
    "SCHEMES",
    "TABLE",
    "SpendLogsSource",
    "is_postgres_url",
    "public_url",
    "spendlogs_digest",
    "spendlogs_source",
]
