"""Before the merge: the pull request check of spec files and the plan it reports.

May import sync, agents, github and the foundations; never events or a stage above."""
