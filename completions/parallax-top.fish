complete -c parallax-top -l control -d 'The control socket of the pipeline (parallax-launch --control=PATH)' -r -F
complete -c parallax-top -l interval -d 'Seconds between samples' -r
complete -c parallax-top -l format -d 'Output format' -r -f -a "table\t'An aligned table, redrawn every interval (once with --once)'
json\t'One JSON object per interval, one per line'"
complete -c parallax-top -l once -d 'Print one sample (over one interval) and exit'
complete -c parallax-top -s h -l help -d 'Print help (see more with \'--help\')'
complete -c parallax-top -s V -l version -d 'Print version'
