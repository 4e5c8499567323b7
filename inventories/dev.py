# The local container host, reached with the Docker API (docker or podman).
# `ops host up` creates the container; see README.
dev = [("@docker/onesift-dev", {})]
