# specbridge: `serve` (the default command), `worker`, `db upgrade`, ... as in compose.yaml.
# Build stage: the wheel and its dependencies' wheels, so the final image has no build tools.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY specs specs
COPY storage storage
COPY fakehub fakehub
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
# git: agents clone the repository they work on.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# Not root: agents run as this same account, and the bot marks itself not dumpable
# (bot/agents/isolation.py), which keeps them out of its /proc; root would see it all.
RUN useradd --create-home --uid 10001 specbridge
USER specbridge
WORKDIR /home/specbridge
ENV PYTHONUNBUFFERED=1 \
    PORT=8000
EXPOSE 8000
ENTRYPOINT ["specbridge"]
CMD ["serve", "--host", "0.0.0.0"]
