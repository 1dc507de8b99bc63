from netspec.cli import main

raise SystemExit(main())
