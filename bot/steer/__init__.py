"""People steering: comment commands (one module per family), card moves, ticket state, reconcile.

May import sync, agents, github and the foundations; never events or a stage above."""
