# One image for the reference target, the Locust master and the workers.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY reliability ./reliability
COPY locustfiles ./locustfiles
COPY scenarios ./scenarios
# a C compiler for the install only: the request event's compiled dispatch (reliability/_dispatch.c)
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install --no-cache-dir . \
 && (cd / && python -c "import reliability._dispatch") \
 && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 reliability \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin reliability \
 && mkdir -p /app/reports && chown reliability:reliability /app/reports
# never root: compose may pick another uid (RELIABILITY_UID) so ./reports stays the host user's;
# HOME and the revert journals then live where any uid can write
ENV PYTHONUNBUFFERED=1 HOME=/tmp RELIABILITY_JOURNAL_DIR=/app/reports/journals
USER 10001:10001
EXPOSE 8080 8089 5557
CMD ["reliability", "target", "--host", "0.0.0.0", "--port", "8080"]
