"""Everything that talks to Proxmox: the API client, tasks, the node shell."""
