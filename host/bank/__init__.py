"""The host's banking side: accounts, cards and the double-entry ledger (``models``,
``ledger``), the authorization services with their order of checks (``services``), PIN
hashing (``pins``), statements (``statements``, ``ministatement``) and seed data (``seed``).
Knows nothing of ISO-8583 framing or MACs: the link side (``host.link``) calls it."""
