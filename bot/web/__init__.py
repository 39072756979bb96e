"""HTTP in: the app factory, POST /webhook, serving, the status page and /metrics.

May import every stage below it (events and lower); nothing imports it but cli."""
