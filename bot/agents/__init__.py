"""Tasks worked: the scheduler, the operator's profiles, one run of a Task in a workspace.

May import github and the foundations; never sync or a stage above.
"""
