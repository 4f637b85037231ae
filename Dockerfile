# One image for the reference target, the Locust master and the workers.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY reliability ./reliability
COPY locustfiles ./locustfiles
COPY scenarios ./scenarios
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
EXPOSE 8080 8089 5557
CMD ["reliability", "target", "--host", "0.0.0.0", "--port", "8080"]
