# specbridge: `serve` (the default command), `worker`, `db upgrade`, ... as in compose.yaml.
# Build stage: wheels of the pinned dependencies (constraints.txt), then specbridge's own,
# so the final image has no build tools and a change to the code rebuilds one wheel only.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt ./
# The dependencies alone first: this layer stays cached until pyproject.toml or the pins change.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt -r requirements.txt
COPY README.md ./
COPY bot bot
COPY specs specs
COPY storage storage
# Not fakehub/: the GitHub double is for tests and `specbridge demo`, not production.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
# git: agents clone the repository they work on. bubblewrap: the sandbox agents run in
# (bot/agents/sandbox.py; see compose.yaml for what it needs of the container).
# tini: PID 1, reaping what agents leave behind and passing signals on.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates bubblewrap tini \
    && rm -rf /var/lib/apt/lists/* \
    && ln -sf /usr/local/bin/python3 /usr/bin/python3
# (/usr/bin/python3: the sandbox's network forwarder runs with the system's Python path.)
COPY --from=build /wheels /wheels
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir --no-index --find-links /wheels -c /tmp/constraints.txt specbridge \
    && rm -rf /wheels /tmp/constraints.txt
# Not root: agents run as this same account, and the bot marks itself not dumpable
# (bot/agents/isolation.py), which keeps them out of its /proc; root would see it all.
RUN useradd --create-home --uid 10001 specbridge
USER specbridge
WORKDIR /home/specbridge
ENV PYTHONUNBUFFERED=1 \
    PORT=8000
EXPOSE 8000
ENTRYPOINT ["tini", "--", "specbridge"]
CMD ["serve", "--host", "0.0.0.0"]
