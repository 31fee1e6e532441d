from projectors.main import main

main()
