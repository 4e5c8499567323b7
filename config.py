# pyinfra reads this file before it connects to any host.
from deploy.ssh import enable_nodelay

enable_nodelay()
