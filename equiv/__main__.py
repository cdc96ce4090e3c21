from equiv.cli import main

main()
