# One image for every Parley process. compose.yaml picks each service's command:
#   uvicorn command_api.app:create_app --factory ...   (likewise query_api, gateway)
#   python -m projectors
# There is no ENTRYPOINT, so `command:` (or `docker run IMAGE CMD...`) replaces CMD whole.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The processes write nothing to the image; they run as an unprivileged user.
RUN groupadd --gid 10001 parley \
    && useradd --uid 10001 --gid parley --no-create-home --shell /usr/sbin/nologin parley

# Dependencies first, read from pyproject.toml alone: a code change reuses this layer. Only
# [project] dependencies: the [embedded] extra (servers for `parley up`) stays out.
# (Every dependency ships wheels for CPython 3.12 on x86_64 and aarch64: no compiler needed.)
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt /tmp/pyproject.toml

# Then the project itself: the packages of [tool.setuptools.packages.find], one COPY each
# (tests/unit/test_compose.py keeps the two lists equal; no stray files reach the image).
COPY pyproject.toml README.md /src/
COPY parley /src/parley
COPY command_api /src/command_api
COPY query_api /src/query_api
COPY projectors /src/projectors
COPY domain /src/domain
COPY shared /src/shared
COPY gateway /src/gateway
RUN pip install --no-deps /src && rm -rf /src

WORKDIR /app
USER 10001:10001

EXPOSE 8000
CMD ["parley", "--help"]
