from bayes_stenosis.cli.app import main

main()
