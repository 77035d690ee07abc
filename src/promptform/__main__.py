from promptform.cli import main

raise SystemExit(main())
