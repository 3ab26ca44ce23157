from anchorprep.cli import main

main()
