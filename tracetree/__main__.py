from tracetree.cli import main

main()
