# Word statistics over generated text: regexes, hashes of arrays, sort, sprintf, join.
use strict; use warnings;
srand(20261201);
my @syl = qw(ka lo mi ne ru sa ti vo ze ha ji po qu re);
my %count; my %first; my @lines;
for my $n (1 .. 150000) {
  my @w = map { join '', map { $syl[int rand @syl] } 1 .. 1 + int rand 4 } 1 .. 3 + int rand 12;
  my $line = join ' ', @w;
  $line =~ s/\b(\w)(\w*)/\u$1$2/ if $n % 3 == 0;
  push @lines, $line if $n % 7 == 0;
  for my $w (split /\s+/, lc $line) { $count{$w}++; push @{$first{substr($w, 0, 2)}}, $n if $count{$w} == 1; }
  @lines = @lines[-2000 .. -1] if @lines > 4000;
}
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 99];
my $rep = join "\n", map { sprintf '%-20s %6d %s', $_, $count{$_}, scalar @{$first{substr($_, 0, 2)}} } @top;
print length($rep), ' ', scalar(keys %count), "\n";
