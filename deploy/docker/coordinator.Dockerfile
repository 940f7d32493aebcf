# dtrain coordinator image: the `dtrain` CLI (coordinator + client commands), without LibTorch,
# so it starts in milliseconds and stays small (deploy/k8s runs it as `dtrain coordinator`).
#
#   docker build -f deploy/docker/coordinator.Dockerfile -t dtrain-coordinator:0.1 .
FROM debian:bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends sudo ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN deploy/install-deps.sh \
    && cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DDTRAIN_WITH_TORCH=OFF \
       -DDTRAIN_BUILD_TESTS=OFF \
    && cmake --build /build -j "$(nproc)" --target dtrain
RUN bash -o pipefail -c 'deploy/docker/runtime-packages.sh /build/bin/dtrain | sort -u \
    > /build/runtime-packages'

FROM debian:bookworm
COPY --from=build /build/runtime-packages /tmp/runtime-packages
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends ca-certificates $(cat /tmp/runtime-packages) \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
COPY --from=build /build/bin/dtrain /usr/local/bin/dtrain
EXPOSE 7070
ENTRYPOINT ["dtrain"]
