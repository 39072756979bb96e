"""The baseline for bench_webhook.py: a Flask app that answers 202 and does nothing."""

from flask import Flask

app = Flask("bare")


@app.post("/webhook")
def webhook() -> tuple[str, int]:
    return "", 202


@app.get("/")
def index() -> str:
    return "ok"
