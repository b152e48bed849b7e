#!/bin/sh
# Stamps out one lab: deploy/kubernetes/labs/NAME/, an overlay of the base at lab size
# (components/lab) in the namespace caplab-NAME, with its own session-token key.
#
#   deploy/kubernetes/new-lab.sh alice                       # one lab
#   for s in alice bob carol; do deploy/kubernetes/new-lab.sh "$s"; done
#   kubectl apply -k deploy/kubernetes/labs/alice            # or every one: for d in ...
#
# NAME: lowercase letters, digits and '-' (it becomes part of a namespace name). The key is
# written to labs/NAME/secret.env (labs/ is not committed); an existing lab is left as it is.
# Add "- ../../components/zones" under components: in its kustomization.yaml to spread that
# lab over zones.
set -eu

name="${1:-}"
case "$name" in
  "" | -* | *-)
    echo "usage: $0 NAME (lowercase letters, digits and '-')" >&2
    exit 2
    ;;
esac
if [ "$(printf '%s' "$name" | tr -d 'a-z0-9-')" != "" ] || [ ${#name} -gt 56 ]; then
  echo "invalid lab name '$name': use at most 56 lowercase letters, digits and '-'" >&2
  exit 2
fi

here="$(cd "$(dirname "$0")" && pwd)"
dir="$here/labs/$name"
if [ -e "$dir" ]; then
  echo "$dir already exists; left as it is" >&2
  exit 1
fi
mkdir -p "$dir"

# 32 random bytes as 64 hex characters (what `openssl rand -hex 32` gives).
umask 077
printf 'SECRET_KEY=%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > "$dir/secret.env"
printf 'REDIS_PASSWORD=%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >> "$dir/secret.env"
umask 022

cat > "$dir/namespace.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata:
  labels:
    pod-security.kubernetes.io/enforce: restricted
  name: caplab-$name
YAML

cat > "$dir/kustomization.yaml" <<YAML
# The lab of $name (made by deploy/kubernetes/new-lab.sh).
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

namespace: caplab-$name

resources:
  - namespace.yaml
  - ../../base

components:
  - ../../components/lab

secretGenerator:
  - name: caplab
    envs:
      - secret.env
YAML

echo "made $dir (namespace caplab-$name); apply it with: kubectl apply -k $dir"
