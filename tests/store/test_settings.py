"""Settings: defaults, partial updates, validation of the merged result with errors naming the field."""

from __future__ import annotations

import json

import pytest

from proximity_sdk.errors import ValidationError
from proximity_sdk.models.settings import Settings, SettingsUpdate
from proximity_sdk.store import Store
from tests.store._helpers import raw_query, url_of

STATIC = {"ip_mode": "static", "ip_pool": "10.0.0.0/24", "gateway": "10.0.0.1"}


def test_defaults(store: Store) -> None:
    settings = store.settings.get()
    assert settings == Settings()
    assert settings.memory_overcommit == 2.0
    assert settings.restore_grace_hours == 24.0
    assert settings.unprivileged is True
    assert settings.ip_mode == "dhcp"
    assert settings.pool() is None


def test_update_is_partial_and_persisted(store: Store) -> None:
    store.settings.update(memory_overcommit=1.5, default_cores=4)
    updated = store.settings.update(SettingsUpdate(bridge="vmbr1", dns_servers=["1.1.1.1", "2606:4700::1111"]))
    assert updated.memory_overcommit == 1.5
    assert updated.default_cores == 4
    assert updated.bridge == "vmbr1"
    assert store.settings.get() == updated
    # only what differs from the defaults is stored, so new defaults reach untouched settings
    [(data,)] = raw_query(url_of(store), "SELECT data FROM settings")
    stored = data if isinstance(data, dict) else json.loads(str(data))
    assert set(stored) == {"memory_overcommit", "default_cores", "bridge", "dns_servers"}


def test_none_clears_a_nullable_field(store: Store) -> None:
    store.settings.update(vlan_tag=42, vmid_min=1000)
    store.settings.update(vlan_tag=None)
    settings = store.settings.get()
    assert settings.vlan_tag is None
    assert settings.vmid_min == 1000


def test_static_network_pool(store: Store) -> None:
    settings = store.settings.update(
        ip_mode="static",
        ip_pool="192.168.5.100-192.168.5.150",
        ip_subnet="192.168.5.0/24",
        gateway="192.168.5.1",
    )
    pool = settings.pool()
    assert pool is not None
    assert str(pool.first) == "192.168.5.100"
    assert str(pool.last) == "192.168.5.150"
    assert pool.prefix_length == 24
    assert "192.168.5.120" in pool
    assert "192.168.5.151" not in pool
    cidr = store.settings.update(ip_pool="10.1.0.0/29", ip_subnet=None, gateway="10.1.0.1").pool()
    assert cidr is not None
    assert (str(cidr.first), str(cidr.last)) == ("10.1.0.1", "10.1.0.6")  # no network/broadcast address


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"memory_overcommit": 0}, "memory_overcommit", "greater than 0"),
        ({"memory_overcommit": -1.5}, "memory_overcommit", "greater than 0"),
        ({"vlan_tag": 0}, "vlan_tag", "greater than or equal to 1"),
        ({"vlan_tag": 4095}, "vlan_tag", "less than or equal to 4094"),
        ({"default_cores": 0}, "default_cores", "greater than or equal to 1"),
        ({"gateway": "10.0.0.300"}, "gateway", "not an IP address"),
        ({"dns_servers": ["dns.example"]}, "dns_servers", "not an IP address"),
        ({"bridge": "vmbr0; reboot"}, "bridge", "pattern"),
        ({"rootfs_storage": "../etc"}, "rootfs_storage", "pattern"),
        ({"ssh_public_keys": ["not a key"]}, "ssh_public_keys", "OpenSSH public key"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"colour": "blue"}, "colour", "unknown field"),
    ],
)
def test_field_errors_name_the_field(store: Store, changes: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as info:
        store.settings.update(**changes)
    assert info.value.field == field
    assert field in str(info.value)
    assert store.settings.get() == Settings(), "a refused update changes nothing"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"ip_mode": "static"}, "needs ip_pool and gateway"),
        ({**STATIC, "gateway": "10.9.9.1"}, "not in the pool's subnet"),
        ({**STATIC, "ip_pool": "10.0.0.10-10.0.0.5", "ip_subnet": "10.0.0.0/24"}, "lower to a higher"),
        ({**STATIC, "ip_pool": "10.0.0.10-10.0.0.50"}, "also give ip_subnet"),
        ({**STATIC, "ip_pool": "10.0.1.10-10.0.1.50", "ip_subnet": "10.0.0.0/24"}, "not inside ip_subnet"),
        ({**STATIC, "ip_pool": "10.0.0.300/24"}, "neither CIDR"),
        ({**STATIC, "ip_pool": "10.0.0.4/31"}, "too small"),
        ({"vmid_min": 5000, "vmid_max": 4000}, "vmid_min"),
    ],
)
def test_inconsistent_combinations_are_refused(store: Store, changes: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        store.settings.update(**changes)
    assert store.settings.get() == Settings()


def test_merged_result_is_validated(store: Store) -> None:
    store.settings.update(**STATIC)
    # moving the pool elsewhere without moving the gateway would break static mode: refused
    with pytest.raises(ValidationError, match="not in the pool's subnet"):
        store.settings.update(ip_pool="172.16.0.0/24")
    assert store.settings.get().ip_pool == "10.0.0.0/24"
    assert store.settings.update(ip_pool="172.16.0.0/24", gateway="172.16.0.1").gateway == "172.16.0.1"


def test_request_and_keywords_are_not_mixed(store: Store) -> None:
    with pytest.raises(ValidationError, match="not both"):
        store.settings.update(SettingsUpdate(default_cores=2), default_disk_gb=4)
