# Recipe `master`: makes a token and shares it with the workers through the store.
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$token" > "$GOT_HOME/master_token"
"$GOT_HOME/goterra-cli" put master_token "$token"
echo "master token published"
# An optional run input `motto`: inputs arrive as exported variables, never as code.
printf '%s' "${motto-}" > "$GOT_HOME/motto"
