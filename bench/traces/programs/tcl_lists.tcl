# Lists, dicts and string building in Tcl.
expr {srand(20261201)}
set d [dict create]
for {set i 0} {$i < 200000} {incr i} {
  set k "key[expr {int(rand() * 20000)}]"
  dict lappend d $k [format "%08x-%d" [expr {int(rand() * 0x7fffffff)}] $i]
  if {$i % 1000 == 0} { set s [string repeat "x$i" [expr {$i % 97}]]; set s [string toupper $s] }
}
set out {}
foreach k [lsort [dict keys $d]] { lappend out "$k [llength [dict get $d $k]] [join [lrange [lsort [dict get $d $k]] 0 2] ,]" }
puts [string length [join $out \n]]
