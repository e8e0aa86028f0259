# The install-at-start baseline of bench/container_bench.py: what a worker is without the
# segscale image, i.e. Beam's SDK with boot and nothing else (like Beam's stock SDK image), so
# that `--setup_file ./setup.py` makes every worker pip-install segscale and its whole stack when
# it starts. The wheels come from a folder in the image instead of PyPI (PIP_NO_INDEX,
# PIP_FIND_LINKS), which keeps the benchmark offline and makes its figure a lower bound: a
# real worker also downloads them.
ARG BASE=localhost/segscale-base:bookworm
FROM ${BASE}
COPY deps/ /opt/wheels/
RUN python3.11 -m venv /opt/beam \
    && /opt/beam/bin/pip install --quiet --no-cache-dir --no-index --find-links /opt/wheels \
        apache-beam==2.77.0 boto3 "setuptools>=68" wheel
COPY boot /opt/apache/beam/boot
ENV PATH=/opt/beam/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1 \
    PIP_NO_INDEX=1 \
    PIP_FIND_LINKS=/opt/wheels \
    LANG=C.UTF-8
ENTRYPOINT ["/opt/apache/beam/boot"]
