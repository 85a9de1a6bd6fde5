"""The resource namespaces of the `Proximity` client (px.hosts, px.nodes, px.settings, ...)."""
