"""Storage: the data model of DESIGN.md, its sessions and its migrations."""
