from anchorprep.cli.app import main

main()
