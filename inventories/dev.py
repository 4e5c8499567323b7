# The local container host, reached with the Docker API (docker or podman).
# `ops host up` creates the container; see README.
import os

dev = [(f"@docker/{os.environ.get('ONESIFT_HOST_PREFIX') or 'onesift'}-dev", {})]
