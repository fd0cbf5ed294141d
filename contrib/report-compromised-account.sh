#!/bin/sh
# report-compromised-account.sh — an example saslguard hook: mails the operator (sendmail -t) about
# an account saslguard has just marked compromised, and logs one line to syslog (logger).
#
# saslguard runs it without a shell and with a clean environment: PATH, the SASLGUARD_* variables
# (ACCOUNT, DETECTOR, ACTION, REASON, EVIDENCE, CLIENT_ADDRESS, TIME) and the Postfix request
# attributes (sasl_username, sasl_method, client_address, client_name, helo_name, sender,
# recipient, ...). Every value is attacker-controlled text: it is always quoted, never evaluated,
# and its control characters (CR, LF, ...) become spaces before it goes into a header or a log line.
#
# Configure it as the hook command, e.g. command = ["/usr/local/libexec/saslguard/report-compromised-account.sh"]

# Who gets the report. Set here and deliberately not taken from the environment: anything that
# reaches the policy port could send an attribute named TO.
TO=""
FROM=""  # envelope sender and From:; empty: sendmail's default
SENDMAIL="/usr/sbin/sendmail"
LOG_TAG="saslguard-hook"

if [ -z "$TO" ]; then
  echo "report-compromised-account.sh: TO is not set; edit $0 and set TO= to the address that gets the reports" >&2
  exit 1
fi

# One line of at most 500 characters: control characters become spaces.
oneline() {
  printf '%s' "$1" | tr '\000-\037\177' '[ *]' | cut -c 1-500
}

account=$(oneline "${SASLGUARD_ACCOUNT:-${sasl_username:-unknown}}")
detector=$(oneline "${SASLGUARD_DETECTOR:-}")
action=$(oneline "${SASLGUARD_ACTION:-}")
reason=$(oneline "${SASLGUARD_REASON:-}")
client_ip=$(oneline "${SASLGUARD_CLIENT_ADDRESS:-${client_address:-}}")
when=$(oneline "${SASLGUARD_TIME:-}")

if command -v logger >/dev/null 2>&1; then
  logger -t "$LOG_TAG" -p mail.warning -- \
    "account=$account detector=$detector action=$action client=$client_ip reason=$reason"
fi

if [ ! -x "$SENDMAIL" ]; then
  echo "report-compromised-account.sh: $SENDMAIL is not executable; no mail sent for $account" >&2
  exit 1
fi

{
  printf 'To: %s\n' "$(oneline "$TO")"
  if [ -n "$FROM" ]; then printf 'From: %s\n' "$(oneline "$FROM")"; fi
  printf 'Subject: New compromised account: %s\n' "$account"
  printf 'Auto-Submitted: auto-generated\n'
  printf 'MIME-Version: 1.0\n'
  printf 'Content-Type: text/plain; charset=utf-8\n'
  printf 'Content-Transfer-Encoding: 8bit\n'
  printf '\n'
  printf 'saslguard marked the account %s as compromised.\n\n' "$account"
  printf 'Detector:       %s\n' "$detector"
  printf 'Action:         %s\n' "$action"
  printf 'Reason:         %s\n' "$reason"
  printf 'Time:           %s\n' "$when"
  printf 'Client address: %s\n' "$client_ip"
  printf 'Client name:    %s\n' "$(oneline "${client_name:-}")"
  printf 'HELO name:      %s\n' "$(oneline "${helo_name:-}")"
  printf 'SASL method:    %s\n' "$(oneline "${sasl_method:-}")"
  printf 'Sender:         %s\n' "$(oneline "${sender:-}")"
  printf 'Recipient:      %s\n' "$(oneline "${recipient:-}")"
  printf '\nEvidence:\n'
  printf '%s\n' "${SASLGUARD_EVIDENCE:-}" | tr -d '\r' # the body: line breaks can add no header
} | if [ -n "$FROM" ]; then
  "$SENDMAIL" -t -i -f "$FROM"
else
  "$SENDMAIL" -t -i
fi
