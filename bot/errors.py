"""The one error a command raises for a problem that is not a bug (a setting, a port
in use, a file that exists): the CLI says it in one line and exits 2."""


class CommandError(Exception):
    """An expected problem, said in one line."""


class GitHubAuthError(RuntimeError):
    """No credentials to act on GitHub with: neither an App nor a token is configured, or
    no person's token where GitHub takes only a person's (bot/github/user_token.py)."""
