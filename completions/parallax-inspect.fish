complete -c parallax-inspect -l exists -d 'Exit 0 if the element exists, 1 if not; print nothing'
complete -c parallax-inspect -s h -l help -d 'Print help (see more with \'--help\')'
complete -c parallax-inspect -s V -l version -d 'Print version'
