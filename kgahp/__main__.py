from kgahp.cli import main

raise SystemExit(main())
