# Goterra demo template for endpoints of kind `local`: each "VM" is a background process on the
# agent's host running its boot script in its own directory. Uses local-exec, so only an admin
# may store it. The agent declares and fills every variable used here (see docs/templates.md):
# do not declare them.

terraform {
  required_providers {
    null = {
      source = "hashicorp/null"
    }
  }
}

locals {
  # One directory per run under the endpoint's data_dir.
  base = "${var.data_dir}/${var.goterra_run}"
  # VM name => recipe variable whose boot script it runs.
  vms = merge(
    { for i in range(length(var.master) > 0 ? 1 : 0) : "master-${i}" => "master" },
    { for i in range(tonumber(var.workers)) : "worker-${i}" => "worker" },
  )
}

resource "null_resource" "vm" {
  for_each = local.vms

  # Destroy-time provisioners may only use `self`: keep the directory here.
  triggers = {
    dir = "${local.base}/${each.key}"
  }

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    environment = {
      VM_DIR  = self.triggers.dir
      VM_NAME = each.key
      BOOT    = var.goterra_cloudinit[each.value]
    }
    # Terraform reads this command's output until every holder of its pipes exits: close every
    # descriptor above 2 before starting the long-lived "VM", which gets its own session.
    command = <<-EOT
      set -eu
      mkdir -p "$VM_DIR"
      printf '%s' "$BOOT" > "$VM_DIR/boot.sh"
      unset BOOT
      cd "$VM_DIR"
      # Each "VM" answers its own name to `hostname`, as a real VM would (the boot script
      # reports status_app_<recipe>_<host> under it).
      mkdir -p "$VM_DIR/bin"
      printf '#!/bin/sh\necho %s\n' "$VM_NAME" > "$VM_DIR/bin/hostname"
      chmod +x "$VM_DIR/bin/hostname"
      for fd in $(ls /proc/$$/fd); do
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
      done
      PATH="$VM_DIR/bin:$PATH" GOT_HOME="$VM_DIR" setsid bash "$VM_DIR/boot.sh" </dev/null >"$VM_DIR/boot.log" 2>&1 &
      echo $! > "$VM_DIR/pid"
    EOT
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/bash", "-c"]
    environment = {
      VM_DIR = self.triggers.dir
    }
    command = <<-EOT
      if [ -f "$VM_DIR/pid" ]; then
        pid=$(cat "$VM_DIR/pid")
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
      fi
      rm -rf "$VM_DIR"
    EOT
  }
}

output "vms" {
  value = sort(keys(null_resource.vm))
}

output "deployment_id" {
  value = var.goterra_deployment
}
