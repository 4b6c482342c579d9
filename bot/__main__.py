"""`python -m bot` is `mentiondesk`."""

from bot.cli import main

raise SystemExit(main())
