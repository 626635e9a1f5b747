# Recipe `worker`: waits for the master's token (the store long-polls) and keeps it.
"$GOT_HOME/goterra-cli" --timeout 10 get master_token > "$GOT_HOME/master_token"
echo "worker got the master token"
