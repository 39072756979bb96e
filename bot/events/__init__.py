"""A delivery's way to a handler: the outbox, the router, the worker, periodic chores, handlers/.

May import review, steer, sync, agents, github and the foundations; never web, ops or cli."""
