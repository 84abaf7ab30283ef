# scanner in a container. From a checkout of this repository:
#   docker build -t scanner .
#   docker run --rm -v "$PWD/inventories:/data:ro" scanner check /data/prod.yaml
# The image holds one virtual environment with scanner and uvloop (the `fast` extra)
# installed from the checkout: no compiler, no pip, no source tree. It runs as an
# unprivileged user: TCP handshakes and the socket error queue's ICMP detail need no
# privileges, and neither does `scanner trace`.

FROM python:3.11-slim AS build
ENV VENV=/opt/scanner
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY scanner ./scanner
RUN python -m venv "$VENV" \
 && "$VENV/bin/pip" install --no-cache-dir --disable-pip-version-check ".[fast]" \
 && "$VENV/bin/pip" uninstall --yes --disable-pip-version-check pip setuptools

FROM python:3.11-slim
COPY --from=build /opt/scanner /opt/scanner
ENV PATH=/opt/scanner/bin:$PATH PYTHONDONTWRITEBYTECODE=1
# A numeric user: Kubernetes' runAsNonRoot can check it without a passwd entry.
USER 10001:10001
WORKDIR /data
ENTRYPOINT ["scanner"]
CMD ["--help"]
