from bayes_stenosis.cli import main

main()
