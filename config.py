# pyinfra reads this file before it connects to any host.
from deploy.containers import refuse_unmanaged_containers
from deploy.ssh import enable_nodelay

enable_nodelay()
# An inventory naming a missing or stopped container is refused, not created or started.
refuse_unmanaged_containers()
