from proximity_sdk.cli import main

raise SystemExit(main())
