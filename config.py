# pyinfra reads this file before it connects to any host.
from onesift.containers import refuse_unmanaged_containers
from onesift.ssh import enable_nodelay

enable_nodelay()
# An inventory naming a missing or stopped container is refused, not created or started.
refuse_unmanaged_containers()
