# Sourced by the grid scripts: DEADLINE="+90m" / "+2h" / "+45s" counts from the script's start, so it
# is turned into POSIX seconds once here (passed on as it is, each recipes.grid call of the script
# would count it again from its own start). Clock times (08:10) and ISO dates pass unchanged.
if [[ "${DEADLINE:-}" =~ ^\+([0-9]+)([smh])$ ]]; then
  case "${BASH_REMATCH[2]}" in s) unit=1 ;; m) unit=60 ;; h) unit=3600 ;; esac
  DEADLINE=$(( $(date +%s) + BASH_REMATCH[1] * unit ))
elif [[ "${DEADLINE:-}" == +* ]]; then
  echo "DEADLINE=$DEADLINE: a relative deadline takes a whole number of s, m or h (e.g. +90m)" >&2
  exit 2
fi
