"""The host's link side: the ISO-8583 server (``server``), terminal keys and their storage
(``config``, ``keys``, ``models``) and reversal advices (``reversals``). It turns messages into
calls on the banking services (``host.bank``) and never touches the ledger another way than
they do."""
