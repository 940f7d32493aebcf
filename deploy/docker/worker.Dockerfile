# dtrain worker image: dtrain-worker (LibTorch CPU, OpenMPI), dtrain-embed-store, the dtrain CLI,
# and sshd, through which the MPI Operator's launcher pod starts the ranks on the worker pods.
# Everything comes from Debian packages (deploy/install-deps.sh); the runtime stage installs
# only the packages that own the shared libraries the binaries load.
#
#   docker build -f deploy/docker/worker.Dockerfile -t dtrain-worker:0.1 .
# (from the repository root). The face-api encoder the store uses is fetched at build time by
# deploy/fetch-face-model.sh (npm); pass --build-arg WITH_FACE_MODEL=0 to leave it out.
FROM debian:bookworm AS build
ARG WITH_FACE_MODEL=1
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends sudo ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN deploy/install-deps.sh \
    && cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DDTRAIN_BUILD_TESTS=OFF \
    && cmake --build /build -j "$(nproc)" --target dtrain dtrain-worker dtrain-embed-store \
    && mkdir -p /out/bin && cp /build/bin/dtrain /build/bin/dtrain-worker /build/bin/dtrain-embed-store /out/bin/
# The Debian packages that own the libraries the binaries need, for the runtime stage.
RUN bash -o pipefail -c 'deploy/docker/runtime-packages.sh /out/bin/* | sort -u > /out/runtime-packages'
RUN if [ "$WITH_FACE_MODEL" = 1 ]; then \
      dir=$(deploy/fetch-face-model.sh /out/models | tail -n1) && mv "$dir" /out/models/face-api; \
    else mkdir -p /out/models; fi

FROM debian:bookworm
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends openssh-server openssh-client openmpi-bin \
       $(cat /tmp/runtime-packages) \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
    # sshd for the MPI Operator: host keys, its run directory, and the keys it mounts at
    # /root/.ssh (sshAuthMountPath) accepted although the Secret's files are group-readable.
    && ssh-keygen -A && mkdir -p /run/sshd \
    && printf 'StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n' \
       > /etc/ssh/sshd_config.d/dtrain.conf \
    # The launcher reaches worker pods by their changing names: no known_hosts to keep.
    && printf 'Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n' \
       > /etc/ssh/ssh_config.d/dtrain.conf
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/models/ /opt/dtrain/models/
EXPOSE 22
CMD ["/usr/sbin/sshd", "-De"]
