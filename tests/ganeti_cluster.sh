#!/bin/bash
# A throw-away single-node Ganeti 3.0 cluster (fake hypervisor), up until stdin closes.
#
# Run as root inside fresh namespaces, so nothing leaks to the host (tests/ganeti_cluster.py does):
#   unshare --mount --uts --net --pid --fork --kill-child --mount-proc ganeti_cluster.sh STATE TEMPLATES
# Ganeti's state (/var/lib/ganeti, /var/log/ganeti, /etc/ganeti) is bind-mounted from STATE/,
# so a watcher outside the namespaces sees STATE/lib/queue as it would see /var/lib/ganeti/queue.
# /srv (file storage, OS and ExtStorage definitions) and /run are private tmpfs. TEMPLATES is
# the cluster's --enabled-disk-templates. Once the cluster is up the script touches STATE/ready
# and waits for its stdin to close; then the pid namespace ends and every Ganeti daemon with it.
# Set-up as in tests/fixtures/ganeti/README.md.
set -eux
T=$1
TEMPLATES=$2
hostname node1.example.test
mount --make-rprivate /
mount -t sysfs sysfs /sys          # this network namespace's devices (the bridge check reads /sys)
for d in lib log etc; do mkdir -p "$T/$d"; done
mkdir -p "$T/log/extstorage"      # provider logs: Ganeti needs it, its ensure-dirs makes only log/os
cp -a /etc/ganeti/. "$T/etc/"
mount --bind "$T/lib" /var/lib/ganeti
mount --bind "$T/log" /var/log/ganeti
mount --bind "$T/etc" /etc/ganeti
mount -t tmpfs tmpfs /run
mkdir -p /run/ganeti /run/sshd /run/lock
mount -t tmpfs tmpfs /srv
cp /etc/hosts "$T/hosts"
printf '198.51.100.10 node1.example.test node1\n198.51.100.100 cluster.example.test cluster\n' >> "$T/hosts"
mount --bind "$T/hosts" /etc/hosts
ip link set lo up
ip link add gnt0 type veth peer name gnt0p
ip addr add 198.51.100.10/24 dev gnt0
ip link set gnt0 up
ip link set gnt0p up
ip link add gntbr0 type bridge
ip link set gntbr0 up
mkdir -p /srv/ganeti/file-storage /srv/ganeti/os/noop /srv/ganeti/extstorage
echo /srv/ganeti/file-storage >> /etc/ganeti/file-storage-paths
cd /srv/ganeti/os/noop
echo 20 > ganeti_api_version
echo default > variants.list
: > parameters.list
for s in create export import rename verify; do printf '#!/bin/sh\nexit 0\n' > $s; chmod +x $s; done
cd "$T"
/usr/sbin/sshd
gnt-cluster init --enabled-hypervisors=fake --enabled-disk-templates="$TEMPLATES" --master-netdev=gnt0 \
    --no-etc-hosts --no-ssh-init --nic-parameters=link=gntbr0 cluster.example.test
touch "$T/ready"
set +x
while read -r _; do :; done   # until the test closes our stdin (or dies)
