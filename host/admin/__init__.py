"""Bank operators on the web: operator accounts and their sessions, the admin API mounted on
the ops app under ``/admin/api/``, the panel under ``/admin/``, the dashboard figures and bank
snapshots (export and import).

The bank operations themselves (customers, accounts, cards, terminals, maintenance, the audit
trail) live in ``host.bank.controls``; this package authenticates the operator, checks the
role, and calls them with the operator as the actor. It never writes a bank row itself except
through those operations or the ledger.
"""
