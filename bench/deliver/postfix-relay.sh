#!/bin/bash
# A private Postfix instance that relays everything to one SMTP sink, for
# bench/deliver/rate.sh. Adapted from /work/shared/bench/postfix-instance.sh
# (same layout; it does not touch /etc/postfix or /var/spool/postfix, and
# starts nothing). The differences:
#   delivery: every domain goes by Postfix's smtp(8) client to
#             [127.0.0.1]:$SINK_PORT (no MX lookup, no TLS); default
#             concurrency settings (20 per destination, slow start from 5)
#   hold:     HOLD=1 writes the instance with its queue manager disabled
#             (master_service_disable = qmgr/unix): mail is accepted into
#             the incoming queue and stays there; `postconf -c $PFDIR/etc
#             -e master_service_disable=` and `postfix -c $PFDIR/etc reload`
#             start qmgr, which then takes the whole queue at once, as
#             `deliver -1` takes a full spool.
#   config:  $PFDIR/etc/{main.cf,master.cf}; queue $PFQUEUE (default
#            $PFDIR/spool); smtpd on 127.0.0.1:$PF_PORT (default 2536)
#   fill:    in_flow_delay = 0, else cleanup(8) sleeps a second per message
#            while qmgr is held
#   log:     $PFDIR/maillog via postlogd
# Start/stop: postfix -c $PFDIR/etc start|stop
set -u
set -e
PFDIR=${PFDIR:-/tmp/postfix-relay-bench}
PFQUEUE=${PFQUEUE:-$PFDIR/spool}
PF_PORT=${PF_PORT:-2536}
SINK_PORT=${SINK_PORT:-2535}
HOLD=${HOLD:-1}
if [ -f "$PFQUEUE/pid/master.pid" ] && kill -0 "$(tr -d ' ' < "$PFQUEUE/pid/master.pid")" 2>/dev/null; then
  echo "postfix instance in $PFQUEUE is running; stop it first" >&2
  exit 1
fi
rm -rf "$PFDIR/etc" "$PFDIR/data" "$PFQUEUE" "$PFDIR/maillog"
mkdir -p "$PFDIR/etc" "$PFDIR/data" "$PFQUEUE"
chown root:root "$PFDIR" "$PFDIR/etc" "$PFQUEUE"
chmod 755 "$PFDIR" "$PFDIR/etc" "$PFQUEUE"
chown postfix "$PFDIR/data"
disable=
[ "$HOLD" = 1 ] && disable=qmgr/unix
cat > "$PFDIR/etc/main.cf" <<M
compatibility_level = 3.6
queue_directory = $PFQUEUE
data_directory = $PFDIR/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench.example.net
mydomain = example.net
myorigin = \$myhostname
mydestination =
mynetworks = 127.0.0.0/8
relay_domains = example.org
relay_transport = smtp:[127.0.0.1]:$SINK_PORT
default_transport = smtp:[127.0.0.1]:$SINK_PORT
local_transport = smtp:[127.0.0.1]:$SINK_PORT
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtpd_banner = \$myhostname ESMTP
biff = no
message_size_limit = 104857600
mailbox_size_limit = 0
maillog_file_prefixes = $PFDIR
maillog_file = $PFDIR/maillog
master_service_disable = $disable
# cleanup(8) waits up to in_flow_delay (1 s) per message while the queue
# manager hands back no flow-control tokens, which with qmgr held is every
# message (10 msg/s from 10 sessions); only the untimed filling is affected
in_flow_delay = 0
M
cat > "$PFDIR/etc/master.cf" <<M
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
M
postfix -c "$PFDIR/etc" check 2>&1 | grep -v 'not owned by root' || true
echo "postfix relay instance ready: postfix -c $PFDIR/etc start (queue $PFQUEUE, port $PF_PORT, sink $SINK_PORT, hold $HOLD)"
