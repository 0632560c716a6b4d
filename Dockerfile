# syntax=docker/dockerfile:1
# auditproxy container image.
#   docker build -t auditproxy .
#   docker run -p 8080:8080 -p 9464:9464 -e AUDITPROXY_UPSTREAM=http://host.docker.internal:8000 auditproxy
# Ports: 8080 traffic (`listen`), 9464 admin: /metrics, /healthz, /readyz (`admin`);
# both come from config/docker/auditproxy.yaml, copied to /etc/auditproxy/auditproxy.yaml.

# ---- builder: wheels for the package and every runtime dependency -------------------
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels . && sha256sum /wheels/*.whl > /wheels.sha256

# ---- runtime: only the installed wheels, no compiler, no source tree ----------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN groupadd --system --gid 10001 auditproxy \
 && useradd --system --uid 10001 --gid auditproxy --home-dir /var/lib/auditproxy \
        --shell /usr/sbin/nologin auditproxy \
 && mkdir -p /var/lib/auditproxy/recordings /etc/auditproxy \
 && chown -R auditproxy:auditproxy /var/lib/auditproxy
# The wheels are bind-mounted from the builder, so they never land in a layer. Their
# checksums are copied first: a bind mount is not part of every builder's cache key
# (buildah/podman reuse the install layer otherwise), a copied file is.
COPY --from=builder /wheels.sha256 /etc/auditproxy/wheels.sha256
RUN --mount=type=bind,from=builder,source=/wheels,target=/tmp/wheels \
    pip install --no-index --find-links=/tmp/wheels auditproxy
COPY config/docker/auditproxy.yaml /etc/auditproxy/auditproxy.yaml
USER auditproxy
WORKDIR /var/lib/auditproxy
VOLUME ["/var/lib/auditproxy/recordings"]
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2)"]
ENTRYPOINT ["auditproxy"]
CMD ["serve", "--config", "/etc/auditproxy/auditproxy.yaml"]
