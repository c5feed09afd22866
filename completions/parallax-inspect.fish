complete -c parallax-inspect -s t -l types -d 'Only list elements of these classes (source, sink, filter, flow, routing; comma separated)' -r
complete -c parallax-inspect -l plugin-path -d 'Also load plugins from these libraries or directories (colon-separated; searched before PARALLAX_PLUGIN_PATH and ~/.local/share/parallax/plugins)' -r
complete -c parallax-inspect -l features -d 'List the optional features (codecs) this binary was built with, and the elements each brings'
complete -c parallax-inspect -l exists -d 'Exit 0 if the element exists, 1 if not; print nothing'
complete -c parallax-inspect -l json -d 'Print JSON instead of text (schema: see README, "parallax-inspect --json")'
complete -c parallax-inspect -s h -l help -d 'Print help (see more with \'--help\')'
complete -c parallax-inspect -s V -l version -d 'Print version'
